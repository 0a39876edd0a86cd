"""Kubernetes context for spans: pod identity (``downward``, ``metadata``, ``detector``), routing
semantics (``routing``), the background watch (``watch``) and the one list of API calls (``api_calls``)."""
