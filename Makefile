# Convenience wrappers; scripts/dev.sh is the source of truth (README commands).
.PHONY: run test deps build bench clean
run:   ; bash scripts/dev.sh run
test:  ; bash scripts/dev.sh test
deps:  ; bash scripts/dev.sh deps
build: ; bash scripts/dev.sh build
bench: ; bash tests/bench/run_all.sh
clean: ; rm -rf build build-asan
