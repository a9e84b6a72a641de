"""Suite-wide settings."""

from hypothesis import settings

# No Hypothesis deadline anywhere: a test asserts behaviour, never what fits in a time window (the suite
# runs on loaded 2-core machines, where one example can take seconds).
settings.register_profile("crowdtune", deadline=None)
settings.load_profile("crowdtune")
