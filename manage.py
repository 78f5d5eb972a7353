#!/usr/bin/env python
"""Same as the ``collect`` command, for people used to Django."""

from collect.__main__ import main

if __name__ == "__main__":
    main()
