"""The console's labels in Chinese and English, and which of the two a request gets.

``?lang=zh|en`` chooses (and is remembered in a cookie); otherwise the browser's
``Accept-Language`` (the first of zh/en it prefers); otherwise Chinese, the operators'
language. A label missing from a language falls back to the English one, then to its key, so a
new page never fails for want of a translation.
"""

from __future__ import annotations

from aiohttp import web

LANG_COOKIE = "gw_lang"
LANGS = ("zh", "en")

EN: dict[str, str] = {
    "title": "Gateway console", "cases": "Cases", "dead_letters": "Dead letters",
    "partners": "Partners", "playground": "Mapping playground", "sign_in": "Sign in",
    "sign_out": "Sign out", "user": "User name", "password": "Password",
    "bad_login": "Wrong user name or password (or too many attempts: wait a few minutes).",
    "no_accounts": "No console account is configured (console.users or console.sso).",
    "application_no": "Application no.", "applicant": "Applicant", "partner": "Partner",
    "status": "Status", "item": "Item", "from": "Received from", "to": "to",
    "overdue": "Overdue only", "search": "Search", "received": "Received", "bundle": "Bundle",
    "deliveries": "Deliveries", "none": "Nothing found.", "next": "Next page",
    "prev": "Previous page", "timeline": "Timeline", "case": "Case", "attempt": "Attempt",
    "outcome": "Outcome", "code": "Code", "message": "Message", "route": "Route rule",
    "mapping": "Mapping", "state": "State", "at": "At", "kind": "Kind", "detail": "Detail",
    "request": "Request (as the mapping renders it now, masked)",
    "reply": "Reply (partner's message, masked)",
    "bodies_note": "Request and reply bytes are not stored (the audit log keeps their SHA-256 "
                   "and size); the request below is rendered again from the stored case.",
    "replay": "Replay", "discard": "Discard", "reason": "Reason", "current_mapping":
    "with the current mapping version", "selected": "Selected", "all_matching":
    "All matching the filter", "done": "Done", "breaker": "Breaker", "in_flight": "In flight",
    "pending": "Pending", "dead": "Dead", "latency": "Latency p50 / p95 (last hour)",
    "error_rate": "Error rate (last hour)", "last_failures": "Last failures",
    "pick_case": "Application no. of a stored case", "or_paste": "or paste a case (JSON)",
    "render": "Render", "rendered": "Rendered partner message", "schema_errors":
    "Schema errors", "not_carried": "Source fields not carried", "role": "Role",
    "forbidden": "Your role does not allow this.", "bad_field": "Check this field",
    "actions": "Operator actions", "show": "Show", "attempts": "Attempts", "filter": "Filter",
    "version": "Version", "region": "Region", "item_no": "Item no.", "no_errors":
    "Valid against the partner's schema.", "error": "Error", "audit": "Audit",
    "attention": "needs attention", "receipt": "Receipt", "sign_in_first": "Sign in first.",
    "csrf": "The form's security token is missing or stale: reload the page and try again.",
    "capped": "The applicant filter looked through the newest 2000 cases that match the other "
              "filters only: narrow them (dates, partner) to search further back.",
}

ZH: dict[str, str] = {
    "title": "网关控制台", "cases": "办件", "dead_letters": "死信", "partners": "对接方",
    "playground": "映射调试", "sign_in": "登录", "sign_out": "退出", "user": "用户名",
    "password": "密码", "bad_login": "用户名或密码错误（或尝试次数过多：请稍候再试）。",
    "no_accounts": "未配置控制台账号（console.users 或 console.sso）。",
    "application_no": "申报号", "applicant": "申请人", "partner": "对接方", "status": "状态",
    "item": "事项", "from": "接收时间从", "to": "至", "overdue": "仅超期", "search": "查询",
    "received": "接收时间", "bundle": "办件状态", "deliveries": "投递", "none": "未找到。",
    "next": "下一页", "prev": "上一页", "timeline": "时间线", "case": "办件",
    "attempt": "投递尝试", "outcome": "结果", "code": "代码", "message": "消息",
    "route": "路由规则", "mapping": "映射", "state": "状态", "at": "时间", "kind": "类型",
    "detail": "详情", "request": "请求（按当前映射重新生成，已脱敏）",
    "reply": "回复（对接方消息，已脱敏）",
    "bodies_note": "请求与回复原文不保存（审计日志保存其 SHA-256 与长度）；下方请求由已存办件重新生成。",
    "replay": "重投", "discard": "作废", "reason": "原因", "current_mapping": "使用当前映射版本",
    "selected": "所选", "all_matching": "全部符合筛选条件的", "done": "完成",
    "breaker": "熔断器", "in_flight": "投递中", "pending": "待投递", "dead": "死信",
    "latency": "时延 p50 / p95（近一小时）", "error_rate": "错误率（近一小时）",
    "last_failures": "最近失败", "pick_case": "已存办件的申报号", "or_paste": "或粘贴办件（JSON）",
    "render": "生成", "rendered": "生成的对接方报文", "schema_errors": "模式校验错误",
    "not_carried": "未传递的源字段", "role": "角色", "forbidden": "您的角色无权执行此操作。",
    "bad_field": "请检查此字段", "actions": "操作记录", "show": "查看", "attempts": "尝试次数",
    "filter": "筛选", "version": "版本", "region": "区划", "item_no": "事项编号",
    "no_errors": "符合对接方模式。", "error": "错误", "audit": "审计",
    "attention": "需处理", "receipt": "回执", "sign_in_first": "请先登录。",
    "csrf": "表单安全令牌缺失或已过期：请刷新页面后重试。",
    "capped": "申请人筛选仅在符合其他条件的最近 2000 件中查找：请缩小条件（日期、对接方）以查找更早的办件。",
}

LABELS = {"en": EN, "zh": ZH}


def choose(request: web.Request) -> str:
    """The request's language (module docstring)."""
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked
    if (kept := request.cookies.get(LANG_COOKIE)) in LANGS:
        return kept
    prefs: list[tuple[float, str]] = []
    for part in request.headers.get("Accept-Language", "")[:500].split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if (lang := tag.strip().lower()[:2]) in LANGS:
            prefs.append((weight, lang))
    return max(prefs, key=lambda p: p[0])[1] if prefs else "zh"


def labels(lang: str) -> dict[str, str]:
    """Every label in ``lang``, English where ``lang`` lacks one."""
    return {**EN, **LABELS.get(lang, {})}


__all__ = ["LANGS", "LANG_COOKIE", "choose", "labels"]
