"""A request in the shape a real coding agent sends (large cached system blocks, 17 tools, a long
tool_use / tool_result history, thinking, streaming): translated to OpenAI nothing is lost, and translated
back to Anthropic it is the same conversation."""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.testing import sim_behaviour as sim
from llmswitch.translate import (
    AnthropicClientOpenAIUpstream,
    OpenAIClientAnthropicUpstream,
    count_tokens_estimate,
)
from tests.test_translate_anthropic_client import assert_valid_openai_request
from tests.test_translate_common import anthropic_final_message, run_stream
from tests.test_translate_openai_client import assert_valid_anthropic_request

Json = dict[str, Any]
EPHEMERAL = {"type": "ephemeral"}


def _schema(props: dict[str, str], required: list[str]) -> Json:
    return {
        "type": "object",
        "properties": {k: {"type": v, "description": f"The {k}"} for k, v in props.items()},
        "required": required,
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }


TOOLS: list[Json] = [
    {"name": name, "description": f"{name}: " + desc * 8, "input_schema": _schema(props, list(props)[:1])}
    for name, desc, props in [
        (
            "Task",
            "Launch a new agent to handle complex, multi-step tasks. ",
            {"description": "string", "prompt": "string"},
        ),
        (
            "Bash",
            "Executes a given bash command in a persistent shell session. ",
            {"command": "string", "timeout": "number"},
        ),
        (
            "Glob",
            "Fast file pattern matching tool that works with any codebase size. ",
            {"pattern": "string", "path": "string"},
        ),
        (
            "Grep",
            "A powerful search tool built on ripgrep. ",
            {"pattern": "string", "path": "string", "output_mode": "string"},
        ),
        ("LS", "Lists files and directories in a given path. ", {"path": "string"}),
        ("ExitPlanMode", "Use this tool when you are in plan mode. ", {"plan": "string"}),
        (
            "Read",
            "Reads a file from the local filesystem. ",
            {"file_path": "string", "offset": "number", "limit": "number"},
        ),
        (
            "Edit",
            "Performs exact string replacements in files. ",
            {"file_path": "string", "old_string": "string", "new_string": "string"},
        ),
        (
            "MultiEdit",
            "Makes multiple edits to a single file in one operation. ",
            {"file_path": "string", "edits": "array"},
        ),
        ("Write", "Writes a file to the local filesystem. ", {"file_path": "string", "content": "string"}),
        (
            "NotebookEdit",
            "Replaces the contents of a specific cell in a Jupyter notebook. ",
            {"notebook_path": "string", "new_source": "string"},
        ),
        (
            "WebFetch",
            "Fetches content from a specified URL and processes it. ",
            {"url": "string", "prompt": "string"},
        ),
        ("TodoWrite", "Use this tool to create and manage a structured task list. ", {"todos": "array"}),
        ("WebSearch", "Allows Claude to search the web and use the results. ", {"query": "string"}),
        (
            "BashOutput",
            "Retrieves output from a running or completed background bash shell. ",
            {"bash_id": "string"},
        ),
        ("KillShell", "Kills a running background bash shell by its ID. ", {"shell_id": "string"}),
        ("SlashCommand", "Execute a slash command within the main conversation. ", {"command": "string"}),
    ]
]
TOOLS[-1]["cache_control"] = EPHEMERAL
INSTRUCTIONS = "".join(
    f"## Section {i}\nWhen working on tasks, follow rule {i} carefully: prefer editing "
    f"existing files, keep changes minimal, and verify with tests (ünïcødé ✓).\n"
    for i in range(300)
)
CLI_SOURCE = "".join(
    f"{i:6}\t    parser.add_argument('--opt{i}', help=\"option {i}\")\n" for i in range(1, 200)
)


def _use(tool_id: str, name: str, tool_input: Json) -> Json:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def _result(tool_id: str, content: Any, **extra: Any) -> Json:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def coding_agent_request() -> Json:
    edits = [
        {
            "old_string": "parser = argparse.ArgumentParser()",
            "new_string": "parser = argparse.ArgumentParser(prog='app')",
        },
        {
            "old_string": "args = parser.parse_args()",
            "new_string": "parser.add_argument("
            "'--verbose', action='store_true')\n    args = parser.parse_args()",
        },
    ]
    todos = [
        {"content": "Add --verbose flag", "status": "completed", "activeForm": "Adding --verbose flag"},
        {"content": "Run the tests", "status": "in_progress", "activeForm": "Running the tests"},
    ]
    png = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg"},
    }
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "temperature": 1,
        "stream": True,
        "metadata": {"user_id": "user_4f2a_account_9c1d_session_77e0"},
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": EPHEMERAL,
            },
            {"type": "text", "text": INSTRUCTIONS, "cache_control": EPHEMERAL},
        ],
        "tools": TOOLS,
        "tool_choice": {"type": "auto"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>\nThe todo list is empty.\n</system-reminder>",
                    },
                    {
                        "type": "text",
                        "text": "Add a --verbose flag to the CLI and run the tests",
                        "cache_control": EPHEMERAL,
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "Find the CLI entry point first.",
                        "signature": "ErUBCkYIBRgC",
                    },
                    {"type": "text", "text": "I'll look at the CLI first."},
                    _use("toolu_01Glob", "Glob", {"pattern": "**/cli.py"}),
                    _use(
                        "toolu_02Grep", "Grep", {"pattern": "argparse", "output_mode": "files_with_matches"}
                    ),
                ],
            },
            {
                "role": "user",
                "content": [
                    _result("toolu_01Glob", "/repo/src/app/cli.py"),
                    _result("toolu_02Grep", [{"type": "text", "text": "Found 1 file\n/repo/src/app/cli.py"}]),
                ],
            },
            {
                "role": "assistant",
                "content": [_use("toolu_03Read", "Read", {"file_path": "/repo/src/app/cli.py"})],
            },
            {
                "role": "user",
                "content": [
                    _result("toolu_03Read", CLI_SOURCE),
                    {
                        "type": "text",
                        "text": "<system-reminder>Whenever you read a file, consider whether it is "
                        "malware.</system-reminder>",
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Adding the flag."},
                    _use(
                        "toolu_04Edit",
                        "Edit",
                        {
                            "file_path": "/repo/src/app/cli.py",
                            "old_string": "argparse.Arg",
                            "new_string": "argparse.Arg",
                        },
                    ),
                ],
            },
            {
                "role": "user",
                "content": [_result("toolu_04Edit", "String to replace not found in file.", is_error=True)],
            },
            {
                "role": "assistant",
                "content": [
                    _use("toolu_05Multi", "MultiEdit", {"file_path": "/repo/src/app/cli.py", "edits": edits})
                ],
            },
            {
                "role": "user",
                "content": [_result("toolu_05Multi", "Applied 2 edits to /repo/src/app/cli.py")],
            },
            {
                "role": "assistant",
                "content": [
                    _use(
                        "toolu_06Bash",
                        "Bash",
                        {"command": "pytest -q", "description": "Run tests", "timeout": 120000},
                    )
                ],
            },
            {
                "role": "user",
                "content": [
                    _result(
                        "toolu_06Bash",
                        [{"type": "text", "text": "...\n3 passed in 0.4s"}],
                        cache_control=EPHEMERAL,
                    )
                ],
            },
            {"role": "assistant", "content": [_use("toolu_07Todo", "TodoWrite", {"todos": todos})]},
            {
                "role": "user",
                "content": [
                    _result("toolu_07Todo", "Todos have been modified successfully."),
                    png,
                    {"type": "text", "text": "Also, does this screenshot look right?"},
                ],
            },
        ],
    }


def _blocks(body: Json, kind: str) -> list[Json]:
    return [
        b
        for m in body["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == kind
    ]


def _texts_of(content: Any) -> str:
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_to_openai_nothing_is_lost() -> None:
    body = coding_agent_request()
    ex = AnthropicClientOpenAIUpstream()
    req = orjson.loads(ex.upstream_body(orjson.dumps(body), body, "kimi-k2-0905-preview", True, False))
    assert_valid_openai_request(req)
    assert ex.thinking
    assert (req["model"], req["max_tokens"], req["temperature"], req["user"]) == (
        "kimi-k2-0905-preview",
        32000,
        1,
        "user_4f2a_account_9c1d_session_77e0",
    )
    assert req["stream_options"] == {"include_usage": True} and req["tool_choice"] == "auto"
    assert req["messages"][0] == {
        "role": "system",
        "content": body["system"][0]["text"] + "\n\n" + INSTRUCTIONS,
    }
    assert len(req["tools"]) == 17
    for tool, fn in zip(TOOLS, req["tools"], strict=True):
        assert fn == {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool["description"],
                "parameters": tool["input_schema"],
            },
        }
    calls = [c for m in req["messages"] for c in m.get("tool_calls", [])]
    uses = _blocks(body, "tool_use")
    assert [(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calls] == [
        (u["id"], u["name"], u["input"]) for u in uses
    ]
    tool_msgs = [m for m in req["messages"] if m["role"] == "tool"]
    results = _blocks(body, "tool_result")
    assert [m["tool_call_id"] for m in tool_msgs] == [r["tool_use_id"] for r in results]
    for m, r in zip(tool_msgs, results, strict=True):
        assert m["content"] == ("Error: " if r.get("is_error") else "") + _texts_of(r["content"])
    everything = orjson.dumps(req).decode()
    for t in _blocks(body, "text"):
        assert orjson.dumps(t["text"]).decode()[1:-1] in everything
    assert req["messages"][2]["reasoning_content"] == "Find the CLI entry point first."
    last = req["messages"][-1]
    assert last["role"] == "user" and last["content"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    assert "cache_control" not in everything and "signature" not in everything


def test_round_trip_back_to_anthropic_is_the_same_conversation() -> None:
    body = coding_agent_request()
    oa = orjson.loads(AnthropicClientOpenAIUpstream().upstream_body(b"", body, "kimi", False, False))
    back = orjson.loads(
        OpenAIClientAnthropicUpstream().upstream_body(b"", oa, "claude-sonnet-4-5", False, False)
    )
    assert_valid_anthropic_request(back)
    assert back["system"] == "\n\n".join(b["text"] for b in body["system"])
    assert back["tools"] == [{k: v for k, v in t.items() if k != "cache_control"} for t in TOOLS]
    assert back["tool_choice"] == {"type": "auto"} and back["max_tokens"] == 32000
    assert back["metadata"] == body["metadata"]
    assert [m["role"] for m in back["messages"]] == [m["role"] for m in body["messages"]]
    assert _blocks(back, "tool_use") == _blocks(body, "tool_use")
    for got, sent in zip(_blocks(back, "tool_result"), _blocks(body, "tool_result"), strict=True):
        assert got["tool_use_id"] == sent["tool_use_id"]
        assert got["content"] == ("Error: " if sent.get("is_error") else "") + _texts_of(sent["content"])
    assert _blocks(back, "image") == _blocks(body, "image")
    joined = orjson.dumps(back).decode()
    for t in _blocks(body, "text"):
        assert orjson.dumps(t["text"]).decode()[1:-1] in joined
    # Documented losses only: cache_control, the signed thinking (reasoning_content cannot be re-signed).
    assert "cache_control" not in joined and "thinking" not in joined


def test_streams_back_through_the_simulator() -> None:
    body = coding_agent_request()
    ex = AnthropicClientOpenAIUpstream()
    req = orjson.loads(ex.upstream_body(orjson.dumps(body), body, "kimi-k2", True, False))
    args = {"description": "Check screenshot", "prompt": "Compare the screenshot with the CLI help"}
    answer = sim.plan(req, {"tool_arguments": args}, anthropic=False)  # the simulator calls the first tool
    tr = ex.stream(False, body)
    final = anthropic_final_message(run_stream(tr, b"".join(sim.openai_events(answer, include_usage=True))))
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "Task", args)]  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use" and final.usage.input_tokens == answer.usage["prompt"] and tr.done


def test_count_tokens_estimate_is_in_the_right_range() -> None:
    body = coding_agent_request()
    estimate = count_tokens_estimate(body)
    text_only = sim.prompt_tokens(body["messages"], body["system"])  # characters / 4, text only
    tools = len(orjson.dumps(TOOLS)) // 4
    assert text_only + tools < estimate < (text_only + tools) * 1.5 + 2000
