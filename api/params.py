"""Request parameters the OpenC3 way: query string, form fields and a JSON body, merged."""

from engine.errors import InvalidInput, TooLarge

MAX_BODY = 4 * 1024 * 1024


def params(req):
    """Return one dict of the query string and the body fields (parsed once per request)."""
    cached = getattr(req.context, "params", None)
    if cached is not None:
        return cached
    merged = {}
    for key, value in req.params.items():
        merged[key] = value
    if req.content_length:
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        # A multipart body is a file upload: its route streams it under its own limit.
        if req.content_length > MAX_BODY and not media_type.startswith("multipart/"):
            raise TooLarge(f"body: larger than {MAX_BODY} bytes")
        if media_type in ("application/json", "application/x-www-form-urlencoded", ""):
            if media_type == "":
                raise InvalidInput("body: send Content-Type application/json or a form")
            try:
                body = req.get_media()
            except RecursionError:
                raise InvalidInput("body: JSON nested too deeply") from None
            if not isinstance(body, dict):
                raise InvalidInput("body: must be a JSON object")
            merged.update(body)
        elif not media_type.startswith("multipart/"):
            raise InvalidInput(f"body: unsupported content type {media_type}")
    req.context.params = merged
    return merged


class ParseParameters:
    """Parse every request's parameters up front, so a malformed body is always a 400."""

    def process_request(self, req, resp):
        params(req)
