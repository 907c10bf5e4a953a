"""`llmswitch advise`: should you switch? Replay a sample of your own traffic on candidate models
through the gateway, have a judge compare each answer with the baseline's, and report quality, cost
and latency with honest uncertainty.

Modules, in the order a run uses them:

- `traffic`   logged exchanges or a JSONL file → replayable chat requests, with a task category;
- `sampling`  stratified (category × tags), seeded sample in a random replay order;
- `state`     the resumable run directory (sample, append-only events);
- `embedded`  the user's config reduced to the run's models, served by `llmswitch serve` on loopback;
- `replay`    the calls, with the OpenAI SDK (streamed: latency, TTFT, usage; cost from the ledger);
- `judge`     the judge prompt (versioned), verdict parsing, retries, the two orders combined;
- `checks`    JSON validity and exact final answers; `outcomes` win / tie / loss per request;
- `stopping`  sequential early stopping; `stats` bootstrap and Wilson intervals;
- `runner`    the replay loop; `results` the numbers; `report` / `html` the outputs; `cli` the command.
"""
