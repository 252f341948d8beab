"""The staff API token in the OpenAPI schema (drf-spectacular), so /api/docs/ offers it beside the session."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class StaffTokenScheme(OpenApiAuthenticationExtension):
    target_class = "reviewapp.people.auth.StaffTokenAuthentication"
    name = "staffToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A staff API token, sent as `Authorization: Token rvs_…`. Issue one on the API tokens page "
                           "(/api-tokens/): it is shown once, stored hashed, acts with your role's permissions, "
                           "and can be revoked there.",
        }
