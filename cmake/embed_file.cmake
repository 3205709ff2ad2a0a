# Turns one file into a C++ function returning its bytes, compiled into
# recgate (docs/openapi.yaml: served at GET /openapi.yaml with no file beside
# the binary). Invoked with -DIN= -DOUT= -DFUNC= -DHEADER=. Bytes are written
# as hex so no delimiter or string-length limit applies.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
# One line of C++ per line of the file.
string(REPLACE "'\\x0a'," "'\\x0a',\n" bytes "${bytes}")
set(body "// Generated from ${IN} by cmake/embed_file.cmake. Do not edit.\n#include \"${HEADER}\"\nnamespace recgate {\nnamespace {\nconst char kBytes[] = {\n${bytes}'\\0'};\n}  // namespace\nstd::string_view ${FUNC}() { return {kBytes, ${size}}; }\n}  // namespace recgate\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
