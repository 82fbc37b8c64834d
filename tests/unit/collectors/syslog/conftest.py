import sys
from pathlib import Path

# Lets the tests `import syslog_helpers` under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
