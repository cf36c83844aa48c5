"""Controls (RULES.md section 8): the rules' own configuration, changed only through
``governance.controls.services`` and held to four eyes when a change weakens it."""
