"""Locate-and-edit knowledge editing: MEMIT, the editing baseline of `mixsd compare`.

``edit_model(model, tokenizer, records, EditConfig(...))`` edits in place;
``run_edit(config)`` is the `mixsd edit` stage (records in, edited model out).
"""

from mixsd.editing.config import EditConfig
from mixsd.editing.memit import apply_memit, closed_form_update
from mixsd.editing.run import edit_model, run_edit

__all__ = ["EditConfig", "apply_memit", "closed_form_update", "edit_model", "run_edit"]
