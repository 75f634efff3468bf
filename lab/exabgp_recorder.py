"""ExaBGP API process: append every message ExaBGP writes to our stdin to the file in argv[1].

It sends no commands, so ExaBGP has nothing to acknowledge, and it keeps reading stdin so
ExaBGP never blocks on a write to it.
"""

import sys


def main() -> None:
    with open(sys.argv[1], "a", encoding="utf-8") as out:
        for line in sys.stdin:
            out.write(line)
            out.flush()


if __name__ == "__main__":
    main()
