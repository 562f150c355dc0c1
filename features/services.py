"""FeatureService names, defined once: every model, the batch job and the service ask Feast
for features by these names (``features.feast_defs`` declares the services themselves).
No Feast import here, so the command line can name a service without loading Feast."""

CHURN_SERVICE = "churn_v1"   # every feature: the widest service, it carries every model's inputs
NPS_SERVICE = "nps_v1"       # every feature but the retention-action history
