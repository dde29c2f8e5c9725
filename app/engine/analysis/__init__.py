"""Analysis engines, one per file behind one protocol (`base`), as httpx keeps transports:
Gemini (`gemini`), the offline rule engine (`rules`), recorded model answers (`recorded`),
and none at all for traders whose filter is the strategy (`filter_only`: every signal
entered).
The prompt and answer schema the model engines share are in `prompt`, the market context
every engine reads in `context`."""
