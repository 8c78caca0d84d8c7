"""Rewrite the shipped manifest of the built-in synthetic sets (after a deliberate generator
change; commit it with the golden files that change with it):

    python -m cvbench.tasks.synthetic.update_manifest
"""

from cvbench.tasks.synthetic.manifest import write_shipped_manifest

if __name__ == "__main__":
    print(write_shipped_manifest())
