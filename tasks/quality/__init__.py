"""Great Expectations quality gates: one gate function for every dataset.

- :mod:`tasks.quality.gate`: :func:`~tasks.quality.gate.gate` validates one day of one dataset (a
  :class:`~tasks.quality.gate.Batch`) and, on failure, quarantines it with the one quarantine
  writer and raises :class:`~tasks.quality.gate.QualityGateFailed`;
- :mod:`tasks.quality.raw`, :mod:`tasks.quality.features`: how a landing drop and a staged
  features partition become a batch;
- :mod:`tasks.quality.suites`: the versioned suites in ``expectations/``;
- :mod:`tasks.quality.context`: the GE context and where a day's Data Docs go.
"""

import logging

# GE logs two hundred lines of INFO registrations while it imports: quiet it before any import
# of great_expectations, so a gate's log starts with the gate.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
