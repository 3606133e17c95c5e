"""Client backends: HTTP to a botwire server (sync stdlib, async httpx) and an async bridge to
the embedded store. Private; use :class:`botwire.Memory` / :class:`botwire.AsyncMemory`."""
