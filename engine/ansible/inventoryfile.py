"""The YAML inventory files of a run: every string value carries ``!unsafe`` (Ansible never
templates it), written as an ASCII double-quoted scalar."""


def yaml_str(text):
    """``text`` as a YAML double-quoted scalar of ASCII characters."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def yaml_value(value):
    """``value`` as a YAML scalar; a string carries ``!unsafe``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "!unsafe " + yaml_str(value)


def inventory_yaml(hosts, groups):
    """Render the inventory: ``hosts`` is ``{name: vars}``, ``groups`` is ``{group: [names]}``."""
    lines = ["all:", "  hosts:"]
    for name, hostvars in hosts.items():
        lines.append(f"    {yaml_str(name)}:")
        for key, value in hostvars.items():
            lines.append(f"      {key}: {yaml_value(value)}")
    lines.append("  children:")
    for group, names in groups.items():
        lines.append(f"    {group}:")
        lines.append("      hosts:")
        for name in names:
            lines.append(f"        {yaml_str(name)}: {{}}")
    return "\n".join(lines) + "\n"
