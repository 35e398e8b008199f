"""python -m safesvd demo    run the users' NaN cases with torch and with safesvd."""

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        from .demo import run

        return run()
    print(__doc__.strip())
    return 0 if not argv else 2


if __name__ == "__main__":
    sys.exit(main())
