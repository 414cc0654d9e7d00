"""qstat -xml and qstat -xml -j: the grid's element names and layout (SGE qstat_xml.c, sge_cull_xml.c).

Written out by hand rather than with ElementTree, because the layout is part of the contract: the
double space after the root tag name, two spaces of indent per level, empty sections as an open and a
close tag on separate lines. Pure; imports model and the output package only.
"""

from __future__ import annotations

import time

from gridshim.model import GridState, JobKind, JobRow, ordered
from gridshim.output import PRIORITY, is_running, queue_instance, section, shown_time
from gridshim.text import shown

SCHEMA = "http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat"
DECL = "<?xml version='1.0'?>\n"
JAT_RUNNING = 128  # SGE JRUNNING, the JAT_status of a running task
# The grid's state attribute of each <job_list>, by section (see qstat_xml.c *_jobs_finished).
SECTION_STATE = {0: "running", 1: "pending", 2: "zombie"}



def escape(text: str) -> str:
    """&, < and > as entities (xml.sax.saxutils.escape's rule; that module imports urllib.request, and
    with it http.client and the email package: ~10 ms of every qstat, docs/performance.md)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

def iso_time(epoch: float) -> str:
    """YYYY-MM-DDTHH:MM:SS in local time, as qstat -xml prints JAT_start_time / JB_submission_time."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def _el(depth: int, name: str, value: object) -> str:
    """One element; control characters (not allowed in XML 1.0 at all) are written as escapes."""
    return f"{'  ' * depth}<{name}>{escape(shown(str(value)))}</{name}>\n"


def _job_list(row: JobRow, depth: int) -> str:
    pad = "  " * depth
    out = [f'{pad}<job_list state="{SECTION_STATE[section(row)]}">\n',
           _el(depth + 1, "JB_job_number", row.job_id),
           _el(depth + 1, "JAT_prio", f"{PRIORITY[is_running(row)]:.5f}"),
           _el(depth + 1, "JB_name", row.name),
           _el(depth + 1, "JB_owner", row.owner),
           _el(depth + 1, "state", getattr(row, "state_text", row.state.value))]
    if is_running(row):
        out.append(_el(depth + 1, "JAT_start_time", iso_time(shown_time(row))))
    else:
        out.append(_el(depth + 1, "JB_submission_time", iso_time(row.submit_time)))
    out.append(_el(depth + 1, "queue_name", queue_instance(row)))
    out.append(_el(depth + 1, "slots", 1))
    tasks = str(getattr(row, "tasks", "") or "")
    if tasks:  # array jobs only (qstat_xml.c): the running task's id, or the pending task set
        out.append(_el(depth + 1, "tasks", tasks))
    out.append(f"{pad}</job_list>\n")
    return "".join(out)


def format_xml(rows: list[JobRow]) -> str:
    """`qstat -xml`: running jobs in <queue_info>, the others in the inner <job_info>."""
    rows = ordered(rows)
    running = "".join(_job_list(r, 2) for r in rows if section(r) == 0)
    waiting = "".join(_job_list(r, 2) for r in rows if section(r) != 0)
    return (DECL + f'<job_info  xmlns:xsd="{SCHEMA}/qstat.xsd">\n'
            + "  <queue_info>\n" + running + "  </queue_info>\n"
            + "  <job_info>\n" + waiting + "  </job_info>\n"
            + "</job_info>\n")


def _path_list(depth: int, tag: str, path: str) -> str:
    pad = "  " * depth
    return (f"{pad}<{tag}>\n{pad}  <path_list>\n" + _el(depth + 2, "PN_path", path)
            + _el(depth + 2, "PN_host", "") + _el(depth + 2, "PN_file_host", "")
            + _el(depth + 2, "PN_file_staging", "false") + f"{pad}  </path_list>\n{pad}</{tag}>\n")


def _request(depth: int, name: str, text: str, value: float) -> str:
    pad = "  " * depth
    return (f"{pad}<qstat_l_requests>\n" + _el(depth + 1, "CE_name", name)
            + _el(depth + 1, "CE_stringval", text) + _el(depth + 1, "CE_doubleval", f"{value:.6f}")
            + f"{pad}</qstat_l_requests>\n")


def _requests(row: JobRow) -> list[tuple[str, str, float]]:
    o = row.options
    out: list[tuple[str, str, float]] = []
    if row.mem_bytes:
        out.append(("h_vmem", f"{row.mem_bytes // 1024}k", float(row.mem_bytes)))
    if o.get("mem_request"):
        out.append(("mem_free", f"{int(o['mem_request']) // 1024}k", float(o["mem_request"])))
    if o.get("wall_seconds"):
        out.append(("h_rt", str(o["wall_seconds"]), float(o["wall_seconds"])))
    if o.get("s_rt"):
        out.append(("s_rt", str(o["s_rt"]), float(o["s_rt"])))
    if o.get("release"):
        out.append(("release", str(o["release"]), 0.0))
    return out


def _detail_element(row: JobRow) -> str:
    d = 3
    pad = "  " * d
    o = row.options
    out = [f"{'  ' * 2}<element>\n", _el(d, "JB_job_number", row.job_id), _el(d, "JB_ar", 0)]
    if row.kind is JobKind.CONTINUOUS:
        out.append(_el(d, "JB_exec_file", f"job_scripts/{row.job_id}"))
    out += [_el(d, "JB_submission_time", int(row.submit_time)), _el(d, "JB_owner", row.owner)]
    if row.run_uid is not None:
        out.append(_el(d, "JB_uid", row.run_uid))
    out.append(_el(d, "JB_group", row.owner))
    if row.run_gid is not None:
        out.append(_el(d, "JB_gid", row.run_gid))
    out += [_el(d, "JB_account", "sge"), _el(d, "JB_merge_stderr", "true" if o.get("join") else "false")]
    mail = str(o.get("mail") or "")
    if mail:
        user, _, host = mail.partition("@")
        out.append(f"{pad}<JB_mail_list>\n{pad}  <mail_list>\n" + _el(d + 2, "MR_user", user)
                   + _el(d + 2, "MR_host", host) + f"{pad}  </mail_list>\n{pad}</JB_mail_list>\n")
    out += [_el(d, "JB_notify", "false"), _el(d, "JB_job_name", row.name)]
    if o.get("stdout"):
        out.append(_path_list(d, "JB_stdout_path_list", str(o["stdout"])))
    out.append(_el(d, "JB_jobshare", 0))
    requests = _requests(row)
    if requests:
        out.append(f"{pad}<JB_hard_resource_list>\n" + "".join(_request(d + 1, *r) for r in requests)
                   + f"{pad}</JB_hard_resource_list>\n")
    out.append(f"{pad}<JB_hard_queue_list>\n{pad}  <destin_ident_list>\n" + _el(d + 2, "QR_name", row.queue)
               + f"{pad}  </destin_ident_list>\n{pad}</JB_hard_queue_list>\n")
    if row.kind is not JobKind.CONTINUOUS and len(row.argv) > 1:
        out.append(f"{pad}<JB_job_args>\n" + "".join(
            f"{pad}  <element>\n" + _el(d + 2, "ST_name", a) + f"{pad}  </element>\n" for a in row.argv[1:])
            + f"{pad}</JB_job_args>\n")
    script = "STDIN" if row.kind is JobKind.CONTINUOUS else (row.argv[0] if row.argv else "")
    if script:
        out.append(_el(d, "JB_script_file", script))
    if is_running(row):
        out.append(f"{pad}<JB_ja_tasks>\n{pad}  <ulong_sublist>\n" + _el(d + 2, "JAT_status", JAT_RUNNING)
                   + _el(d + 2, "JAT_task_number", 1)
                   + _el(d + 2, "JAT_start_time", int(shown_time(row)))
                   + f"{pad}  </ulong_sublist>\n{pad}</JB_ja_tasks>\n")
    if o.get("cwd") and o.get("workdir"):
        out.append(_el(d, "JB_cwd", o["workdir"]))
    if o.get("stderr"):
        out.append(_path_list(d, "JB_stderr_path_list", str(o["stderr"])))
    out.append(_el(d, "JB_execution_time", row.not_before or 0))
    out.append(f"{'  ' * 2}</element>\n")
    return "".join(out)


def _messages(rows: list[JobRow]) -> str:
    notes = [r for r in rows if r.message and (r.state is GridState.ERROR or not is_running(r))]
    if not notes:
        return "  <messages>\n  </messages>\n"
    out = ["  <messages>\n", "    <element>\n", "      <SME_message_list>\n"]
    for r in notes:
        out += ["        <element>\n", "          <MES_job_number_list>\n", "            <ulong_sublist>\n",
                _el(7, "ULNG_value", r.job_id), "            </ulong_sublist>\n",
                "          </MES_job_number_list>\n", _el(5, "MES_message", r.message), "        </element>\n"]
    out += ["      </SME_message_list>\n", "    </element>\n", "  </messages>\n"]
    return "".join(out)


def format_xml_details(rows: list[JobRow]) -> str:
    """`qstat -xml -j …` for jobs that exist."""
    rows = ordered(rows)
    return (DECL + f'<detailed_job_info  xmlns:xsd="{SCHEMA}/detailed_job_info.xsd">\n'
            + "  <djob_info>\n" + "".join(_detail_element(r) for r in rows) + "  </djob_info>\n"
            + _messages(rows) + "</detailed_job_info>\n")


def format_xml_unknown(requested: list[str]) -> str:
    """`qstat -xml -j …` when none of the requested jobs exists (exit 0, unlike the plain form)."""
    body = "".join("  <element>\n" + _el(2, "ST_name", r) + "  </element>\n" for r in requested)
    return (DECL + f'<unknown_jobs  xmlns:xsd="{SCHEMA}/detailed_job_info.xsd">\n' + body
            + "</unknown_jobs>\n")
