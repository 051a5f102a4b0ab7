"""Sphinx extension: each inline <script> only once per page.

With Sphinx 7.4 and Jupyter Book 1.x, the inline scripts that extensions add while the build starts
(sphinx-thebe's configuration, sphinx-togglebutton's selector) are written into every page twice.
sphinx-thebe's declares ``const THEBE_JS_URL``, so the second copy throws "Identifier 'THEBE_JS_URL'
has already been declared" in every page's console. This keeps the first copy of each inline script.

Enable it in _config.yml:

    sphinx:
      local_extensions:
        unique_inline_scripts: tools/
"""

from __future__ import annotations


def _drop_repeated_inline_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", None) or {}
        body = attributes.get("body")
        if not getattr(script, "filename", None) and body is not None:
            key = (body, tuple(sorted((k, str(v)) for k, v in attributes.items())))
            if key in seen:
                continue
            seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    # priority 900: after the themes
    app.connect("html-page-context", _drop_repeated_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
