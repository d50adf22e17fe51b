"""python3 -m glupy: the glupy command (glupy.cli), without /usr/local/sbin/glupy."""
import sys

from .cli import main

sys.exit(main())
