"""The HTTP edge shared by the services (FastAPI): the only part of contracts that knows it."""
