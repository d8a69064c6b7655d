"""The library under every face: the CLI, the page, the daemon, the tests.

One call per domain step, with every rule check there:

* :class:`Clerk` -- a node's store opened for business: ``found``, ``admit``,
  ``leave``, ``follow``, ``propose`` (every kind), ``amend``, ``vote``,
  ``stand``, ``withdraw``, ``recall``, ``members``, ``resolve_*``. Writes
  return a :class:`Written` (the id and the facts of its confirmation).
* :mod:`imier.api.home` -- ``init`` (all or nothing), ``new_key``, ``people``,
  ``open_clerk``.
* :mod:`imier.api.carry` -- ``export_file``, ``import_file``, ``import_bundle``.
* :mod:`imier.api.resolve` -- ids from what people type.
* :mod:`imier.api.checks` -- "would the decision procedure count this?"

Nothing here imports :mod:`imier.cli`, libp2p or trio.
"""

from .carry import MAX_BUNDLE_BYTES, Exported, export_file, import_bundle, import_file
from .clerk import PROPOSAL_OPTIONS, Clerk, Signer
from .home import Made, init, new_key, open_clerk, people
from .resolve import Ref
from .written import Written

__all__ = [
    "Clerk", "Signer", "Written", "Ref", "PROPOSAL_OPTIONS",
    "init", "new_key", "people", "open_clerk", "Made",
    "export_file", "import_file", "import_bundle", "Exported", "MAX_BUNDLE_BYTES",
]
