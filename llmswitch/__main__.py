import sys

from llmswitch.cli import main

sys.exit(main())
