"""Serving: the gRPC servicer, admission, security, status mapping and observability."""
