"""Publishing an AssetSet to a target: a local directory (``local``) or S3 (``s3``), both behind the
``target.Target`` protocol (layout: docs/layout.md).

A push is ``plan.plan_release`` (which objects, keys and headers; upload, copy or skip against what
the target holds), then ``execute.execute`` (stages in order, then the release bookkeeping of
``release_index``: ``release.json`` and ``releases.json``, and the ``index_page``), giving a
``report.PublishReport``. ``delete`` removes releases, ``audit`` re-reads them (``bosco verify``),
``compress`` stores the gzip and brotli forms. Nothing here imports the build layer (pipeline,
bundle): publishing works on a finished AssetSet. This package module itself holds only the
defaults the command line shows, so that a command starts without loading the publish modules.
"""

import os

DEFAULT_BUILD = "default"  # the build (release) of s3push and build --out when -b is not given
DEFAULT_CONCURRENCY = min(32, (os.cpu_count() or 1) * 8)  # objects sent or read at once by default
