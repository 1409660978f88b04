"""benzo-monitor: loading anonymised billing exports of the benzodiazepine withdrawal programme."""

__version__ = "0.1.0"
