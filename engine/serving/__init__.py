"""The engine as a service: gRPC server, admission, security, observability, local discovery."""
