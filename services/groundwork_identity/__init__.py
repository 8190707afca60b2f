"""Identity service: accounts, argon2id passwords, EdDSA access tokens with a
rotating JWKS, and refresh tokens rotated on every use."""

SERVICE_NAME = "groundwork.identity.v1.IdentityService"
MIGRATIONS = __path__[0] + "/migrations"
