"""schemathesis hooks for scripts/fuzz-api.sh: the two rules of the API that a JSON Schema cannot
state, applied to the generated bodies so that a request the document calls valid is valid.

- POST /index: a path appears once per request (a second one is refused with 400).
- POST /index/repository: a local repository is an existing directory (400 otherwise).

schemathesis checks a changed case against the schema again, so a body these hooks make valid
counts as valid and one that stays invalid still must be refused.
"""

import os

import schemathesis

# A small git repository the run made (fuzz-api.sh), so a local location can be worked for real.
REPOSITORY = os.environ.get("FUZZ_REPOSITORY_DIR", "/")


@schemathesis.hook.apply_to(method="POST", path="/index")
def map_case(context, case):
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("files"), list):
        seen = set()
        files = []
        for file in body["files"]:
            path = file.get("path") if isinstance(file, dict) else None
            if isinstance(path, str):
                if path in seen:
                    continue
                seen.add(path)
            files.append(file)
        if len(files) != len(body["files"]):
            case.body = {**body, "files": files}
    return case


@schemathesis.hook.apply_to(method="POST", path="/index/repository")
def map_case(context, case):  # noqa: F811 (one hook per operation)
    body = case.body
    if isinstance(body, dict):
        repository = body.get("repository")
        local = isinstance(repository, str) and repository.startswith("/") and "://" not in repository
        if local and "\x00" not in repository and not os.path.isdir(repository):
            case.body = {**body, "repository": REPOSITORY}
    return case
