"""The model client: one door through which every Gemini call goes (analysis and generation).

It is where the cost and the failure modes of a model are handled once for everyone: the
cache, the per-user daily budget, bounded concurrency, timeouts, retries and a record of
every attempt (`client`), behind ports for the records (`ports`).
"""
