#!/usr/bin/env python3
"""Parses Prometheus text exposition with the reference parser
(prometheus_client) and prints one sample per line: name{sorted labels} value.
Exits non-zero when the text does not parse. Used by tests/integration/ops_test.cpp."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = open(sys.argv[1], encoding="utf-8").read()
    families = list(text_string_to_metric_families(text))
    for fam in families:
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            print(f"{s.name}{{{labels}}} {s.value!r}")
    print(f"# families {len(families)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
