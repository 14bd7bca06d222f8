"""The offline model with tools, through litellm's custom provider path, and the gateway's
conversion of tool calls both ways."""

from __future__ import annotations

import json

from meshcore.adapters.litellm_env import litellm
from meshcore.adapters.litellm_models import message_dict, register_offline_model, tool_calls_of
from meshcore.ports import Message, ToolCall
from meshcore.settings import OFFLINE_MODEL

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "kb__lookup",
            "description": "Look up a fact.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query", "limit"],
            },
        },
    },
    {"type": "function", "function": {"name": "kb__other", "parameters": {"type": "object"}}},
]
PROMPT = [
    {"role": "system", "content": "You are the research scout. Answer format: draft"},
    {"role": "user", "content": "Task: Launch Orbit\nYour subtask: find the facts"},
]


def test_offered_tools_it_calls_the_first_then_answers_quoting_its_result() -> None:
    register_offline_model(0)

    first = litellm.completion(model=OFFLINE_MODEL, messages=PROMPT, tools=TOOLS)

    assert first.choices[0].finish_reason == "tool_calls"
    [call] = tool_calls_of(first.choices[0].message)
    assert (call.name, call.arguments) == ("kb__lookup", {"query": "find the facts", "limit": 1})
    answered = [
        *PROMPT,
        message_dict(Message("assistant", "", tool_calls=(call,))),
        message_dict(Message("tool", "fact: 42 sources agree\nmore", tool_call_id=call.id)),
    ]
    second = litellm.completion(model=OFFLINE_MODEL, messages=answered, tools=TOOLS)

    assert not second.choices[0].message.tool_calls
    text = second.choices[0].message.content
    assert "Draft by the research scout for: find the facts" in text
    assert text.endswith("Tool kb__lookup said: fact: 42 sources agree")


def test_without_tools_it_answers_as_before() -> None:
    register_offline_model(0)

    answer = litellm.completion(model=OFFLINE_MODEL, messages=PROMPT)

    assert not answer.choices[0].message.tool_calls
    assert "Tool " not in answer.choices[0].message.content


def test_messages_carry_tool_calls_and_results_in_the_openai_shape() -> None:
    call = ToolCall("c1", "kb__lookup", {"query": "x"})

    assert message_dict(Message("assistant", "", tool_calls=(call,))) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "kb__lookup", "arguments": json.dumps({"query": "x"})},
            }
        ],
    }
    assert message_dict(Message("tool", "42", tool_call_id="c1")) == {
        "role": "tool", "content": "42", "tool_call_id": "c1",
    }  # fmt: skip
    assert message_dict(Message("user", "hi")) == {"role": "user", "content": "hi"}
