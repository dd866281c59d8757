"""What an operator watches: Prometheus metrics and the health endpoints (issue 23)."""
