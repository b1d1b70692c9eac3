"""HTTP only: routes, content negotiation, request context. Calls the store and the engines."""
