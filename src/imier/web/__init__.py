"""The node's HTTP face: the member page (a phone's own key signs there), the meeting
page (a live view for a projector) and the JSON API they use (docs/web.md).

Nothing is imported here: ``imier vote`` and ``imier status`` never load the
web stack. ``imier web`` and ``imier daemon --web`` import :mod:`.server`.
"""
