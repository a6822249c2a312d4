"""Serving: the gRPC servicer, admission, security, status mapping, observability and local discovery."""
