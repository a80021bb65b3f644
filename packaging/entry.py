"""PyInstaller's entry script: the console command ``headless-meeting-bot``.

The frozen binary runs this for every invocation, ``serve``, ``doctor`` and the
``worker`` processes that ``serve`` starts as ``sys.executable``.
"""

from appliance.cli import main

if __name__ == "__main__":
    main()
