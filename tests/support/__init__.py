"""Helpers shared by the test suites: real servers, real PostgreSQL, backends."""
