"""OpenAI-compatible models through the official ``openai`` client: the workflow planner."""

from adapters.openai.planner import OpenAIPlanner, PlannerAnswerInvalid, PlannerUnavailable, from_settings

__all__ = ["OpenAIPlanner", "PlannerAnswerInvalid", "PlannerUnavailable", "from_settings"]
