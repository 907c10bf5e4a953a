"""The default system prompt, added inside the model's own Jinja chat template.

SmolLM2-135M-Instruct answers junk with the default its template inserts ("You are a helpful AI
assistant named SmolLM, trained by Hugging Face") and "The capital of France is Paris." with
DEFAULT_SYSTEM_PROMPT. Doing it in the template keeps llama.cpp's C++ server the only thing on the
request path (no Python proxy rewriting bodies).
"""

from __future__ import annotations

import json

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def with_default_system_prompt(template: str, prompt: str) -> str:
    """`template` preceded by a prelude that inserts `{"role": "system", "content": prompt}` when the
    conversation does not start with a system (or developer) message."""
    literal = json.dumps(prompt, ensure_ascii=False)  # a valid Jinja string literal (escapes " \ and \n)
    prelude = (
        "{%- if not messages or messages[0]['role'] not in ['system', 'developer'] -%}"
        "{%- set messages = [{'role': 'system', 'content': " + literal + "}] + messages -%}"
        "{%- endif -%}"
    )
    return prelude + template
