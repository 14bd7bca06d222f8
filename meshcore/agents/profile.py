"""What every agent type declares: its role, what it reads and what it writes to memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.network import AgentType
from meshcore.ports import Message

# The offline model reads this line to know which shape of answer the prompt wants.
ANSWER_FORMAT = "Answer format: {}"


@dataclass(frozen=True)
class AgentProfile:
    type: AgentType
    role: str
    capabilities: tuple[str, ...]
    reads: tuple[MemoryType, ...]
    writes: MemoryType
    answer_format: str = "draft"
    confidence: float = 0.7

    def system_prompt(self) -> str:
        return f"{self.role}\n{ANSWER_FORMAT.format(self.answer_format)}"

    def step_messages(
        self,
        *,
        task: str,
        context: dict[str, object],
        subtask: str,
        dependencies: Sequence[MemoryItem],
        memory: Sequence[MemoryItem],
    ) -> list[Message]:
        """The prompt of one specialist step: the task, its subtask and what memory holds."""
        parts = [f"Task: {task}", f"Your subtask: {subtask}"]
        if context:
            parts.append("Context: " + "; ".join(f"{k}={v}" for k, v in sorted(context.items())))
        if dependencies:
            parts.append("Work you build on:")
            parts += [
                bullet(f"[{m.metadata.get('source_agent')}] ", m.content) for m in dependencies
            ]
        if memory:
            parts.append("Shared memory:")
            parts += [bullet(f"({m.type}, {m.confidence:.2f}) ", m.content) for m in memory]
        return [Message("system", self.system_prompt()), Message("user", "\n".join(parts))]


def bullet(head: str, text: str) -> str:
    """One item of a prompt's list: later lines of a multi-line text are indented under it.

    Unindented, an earlier draft's second line read as the end of the list, so a reader (the
    offline model among them) saw fewer items than the step records as read.
    """
    first, *rest = text.splitlines() or [""]
    return "\n".join([f"- {head}{first}", *(f"  {line}" for line in rest)])


def json_part(text: str) -> str:
    """The outermost JSON object in a model's answer: models wrap JSON in prose or fences."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text
