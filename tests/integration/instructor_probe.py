"""Run instructor's TOOLS mode against a gateway; print the result as JSON.

Run by test_structured_libs.py with the interpreter of the venv made for it
(``make test`` creates ``.venv/instructor``): instructor pins ``jiter<0.15``,
which would hold the openai SDK of the main test venv back by dozens of
releases, so instructor gets an environment of its own, resolved by pip as a
user's would be.

Usage: python instructor_probe.py BASE_URL CASE   (CASE: person or pet)
"""
import json
import sys
from typing import Any

import instructor
import openai
import pydantic


class Person(pydantic.BaseModel):
    """A person somebody made up."""

    name: str
    age: int


class Pet(pydantic.BaseModel):
    species: str = pydantic.Field(json_schema_extra={"enum": ["cat", "dog"]})
    legs: int


def main() -> None:
    base_url, case = sys.argv[1], sys.argv[2]
    model: Any = Person if case == "person" else Pet
    prompt = "Invent a person" if case == "person" else "A pet"
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=20) as sdk:
        client = instructor.from_openai(sdk, mode=instructor.Mode.TOOLS)
        got = client.chat.completions.create(model="llama3.2", response_model=model,
                                             messages=[{"role": "user", "content": prompt}],
                                             max_retries=0)
    print(json.dumps({"type": type(got).__name__, "value": got.model_dump(),
                      "instructor": instructor.__version__, "openai": openai.__version__}))


if __name__ == "__main__":
    main()
