"""Install exported models into a sunnypilot checkout or model folder. Never imports torch."""
