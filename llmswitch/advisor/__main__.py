import sys

from llmswitch.advisor.cli import main

sys.exit(main())
