"""The LangGraph agent: a ReAct loop (model -> tools -> model ... -> answer) whose
prompt, sampling and enabled tools come from each turn's settings, with memory in a
LangGraph checkpointer on plain Redis.

- `agent.Agent`      what the chat service calls: `stream_reply`, `history`, `reset`
- `graph`            the explicit `StateGraph` and its step limit
- `tool_calls`       runs one model message's tool calls (offered tools only, timeouts)
- `history`          trimming that keeps each tool call with its result; storage bound
- `prompts`          tool guidance with few-shot examples for small models
- `tools/`           calculator, web search (DuckDuckGo, SearxNG), document search
"""
