"""Schemathesis hooks for test_schema_fuzz: a stricter status check than the built-in one, which accepts
any status when an operation lists ``default``: here every status must be listed by its own number."""

import schemathesis
from schemathesis.core.failures import Failure


class UnlistedStatus(Failure):
    pass


@schemathesis.check
def status_is_listed_explicitly(ctx, response, case):
    listed = {str(code) for code in case.operation.responses.status_codes}
    if str(response.status_code) not in listed:
        raise UnlistedStatus(
            operation=case.operation.label,
            title="Status not listed by its number",
            message=f"Received: {response.status_code}\nListed: {', '.join(sorted(listed))}",
        )
