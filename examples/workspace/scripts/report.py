"""Summarises the regions given on the command line (a `source:` script)."""
import json
import os
import sys

regions = sys.argv[1:]
title = os.environ.get("INPUT_TITLE", "report")
print(f"{title}: {len(regions)} regions: {', '.join(regions)}")
print("OUTPUT: " + json.dumps({"regions": len(regions), "title": title}))
