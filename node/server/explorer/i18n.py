"""Languages of the explorer: zh-CN and English, chosen per request; money and dates by Babel.

The language comes from `?lang=` (remembered in a cookie by the page's switch), else the
cookie, else the browser's Accept-Language, else Chinese. Amounts are integers in the
currency's minor unit on the ledger; Babel knows each currency's digits and each locale's
symbols and grouping, so "¥1,234.50" and "US$12.00" are never hand-formatted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.numbers import format_currency, format_percent, get_currency_precision

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
COOKIE = "almoner_lang"

MESSAGES: dict[str, dict[str, str]] = {
    "title": {"en": "Almoner donation explorer", "zh-CN": "Almoner 捐赠追踪"},
    "tagline": {
        "en": "Follow every donation like a parcel. Your browser checks the proofs itself.",
        "zh-CN": "像查快递一样追踪每一笔捐款，证明由您的浏览器亲自验证。",
    },
    "search_label": {
        "en": "Donation id or tracking link",
        "zh-CN": "捐赠编号或追踪链接",
    },
    "search_button": {"en": "Track", "zh-CN": "追踪"},
    "search_none": {"en": "No donation with that id.", "zh-CN": "没有找到该编号的捐赠。"},
    "search_many": {
        "en": "Several platforms used this id; pick yours:",
        "zh-CN": "多个平台使用了该编号，请选择：",
    },
    "latest_donations": {"en": "Latest donations", "zh-CN": "最新捐赠"},
    "latest_blocks": {"en": "Latest blocks", "zh-CN": "最新区块"},
    "validators": {"en": "Validators", "zh-CN": "验证节点"},
    "certified_head": {"en": "Certified head", "zh-CN": "已认证的最新区块"},
    "height": {"en": "Height", "zh-CN": "高度"},
    "time": {"en": "Time", "zh-CN": "时间"},
    "txs": {"en": "Transactions", "zh-CN": "交易数"},
    "hash": {"en": "Hash", "zh-CN": "哈希"},
    "signatures": {"en": "Signatures", "zh-CN": "签名数"},
    "donation": {"en": "Donation", "zh-CN": "捐赠"},
    "amount": {"en": "Amount", "zh-CN": "金额"},
    "charity": {"en": "Charity", "zh-CN": "慈善组织"},
    "platform": {"en": "Platform", "zh-CN": "募捐平台"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "confirmed": {"en": "Confirmed", "zh-CN": "已确认"},
    "unconfirmed": {"en": "Not yet confirmed", "zh-CN": "待确认"},
    "none_yet": {"en": "Nothing yet.", "zh-CN": "暂无记录。"},
    "track_title": {"en": "Where did this donation go?", "zh-CN": "这笔捐款去了哪里？"},
    "step_received": {"en": "Received by {platform}", "zh-CN": "{platform} 收到捐款"},
    "step_received_detail": {
        "en": "Received {received}; recorded on the ledger {recorded} (block {height}).",
        "zh-CN": "收款时间 {received}；上链时间 {recorded}（区块 {height}）。",
    },
    "step_confirmed": {"en": "Confirmed by {charity}", "zh-CN": "{charity} 确认收到"},
    "step_moved": {"en": "Moved to {target}", "zh-CN": "转入 {target}"},
    "step_spent": {"en": "Spent: {purpose}", "zh-CN": "支出：{purpose}"},
    "step_refunded": {"en": "Refunded to the donor", "zh-CN": "已退还捐赠人"},
    "step_held": {"en": "Still held by {charity}", "zh-CN": "仍由 {charity} 持有"},
    "fund": {"en": "fund", "zh-CN": "基金"},
    "payee": {"en": "Payee", "zh-CN": "收款方"},
    "category": {"en": "Category", "zh-CN": "类别"},
    "evidence": {"en": "Evidence hashes", "zh-CN": "凭证哈希"},
    "purpose": {"en": "Purpose", "zh-CN": "用途"},
    "block": {"en": "block", "zh-CN": "区块"},
    "proof": {"en": "Proof", "zh-CN": "证明"},
    "checking": {"en": "checking…", "zh-CN": "验证中…"},
    "verified": {"en": "", "zh-CN": "已验证"},
    "failed": {"en": "", "zh-CN": "验证失败"},
    "proof_explain": {
        "en": "Each step is checked in your browser: the transaction's hash, its inclusion "
        "proof in the ledger's Merkle log, and the commit certificate of the head it proves "
        "against, signed by a quorum of the validators pinned below (Ed25519, SHA-256).",
        "zh-CN": "每一步都在您的浏览器中验证：交易哈希、其在账本默克尔日志中的包含证明，"
        "以及所依据区块的提交证书（须由下方固定的验证节点中达到法定人数者签名，Ed25519、SHA-256）。",
    },
    "proof_summary": {"en": "All proofs", "zh-CN": "全部证明"},
    "pinned_keys": {"en": "Pinned validator keys", "zh-CN": "固定的验证节点公钥"},
    "receipt": {"en": "Receipt link", "zh-CN": "收据链接"},
    "qr_label": {"en": "QR code of this tracking page", "zh-CN": "本追踪页面的二维码"},
    "charity_title": {"en": "Charity", "zh-CN": "慈善组织"},
    "suspended": {"en": "Suspended", "zh-CN": "已暂停"},
    "active": {"en": "Active", "zh-CN": "正常"},
    "funds": {"en": "Funds", "zh-CN": "基金"},
    "balance": {"en": "Balance", "zh-CN": "余额"},
    "campaigns": {"en": "Campaigns", "zh-CN": "募捐项目"},
    "goal": {"en": "Goal", "zh-CN": "目标"},
    "raised": {"en": "Raised", "zh-CN": "已筹"},
    "spent": {"en": "Spent", "zh-CN": "已支出"},
    "held": {"en": "Held", "zh-CN": "结余"},
    "per_period": {"en": "Income and spending per month", "zh-CN": "每月收支"},
    "period": {"en": "Period", "zh-CN": "期间"},
    "income": {"en": "Income", "zh-CN": "收入"},
    "program": {"en": "Programs", "zh-CN": "项目支出"},
    "admin": {"en": "Administration", "zh-CN": "管理费用"},
    "fundraising": {"en": "Fundraising", "zh-CN": "筹款费用"},
    "refunds": {"en": "Refunds", "zh-CN": "退款"},
    "overhead": {"en": "Overhead ratio", "zh-CN": "管理及筹款费用占比"},
    "confirmation_rate": {"en": "Confirmation rate", "zh-CN": "确认率"},
    "audits": {"en": "Audit opinions", "zh-CN": "审计意见"},
    "opinion_clean": {"en": "Clean", "zh-CN": "无保留意见"},
    "opinion_qualified": {"en": "Qualified", "zh-CN": "保留意见"},
    "opinion_adverse": {"en": "Adverse", "zh-CN": "否定意见"},
    "opinion_disclaimer": {"en": "Disclaimer", "zh-CN": "无法表示意见"},
    "flow_title": {"en": "Where the money flows", "zh-CN": "资金流向"},
    "flow_held": {"en": "Still held", "zh-CN": "尚未使用"},
    "flow_refund": {"en": "Refunds", "zh-CN": "退款"},
    "donations_of": {"en": "Donations", "zh-CN": "捐赠记录"},
    "next_page": {"en": "Older", "zh-CN": "更早"},
    "unconfirmed_money": {"en": "Unconfirmed", "zh-CN": "未确认"},
    "not_found": {"en": "Not found", "zh-CN": "未找到"},
    "home": {"en": "Home", "zh-CN": "首页"},
    "api_docs": {"en": "API", "zh-CN": "接口文档"},
    "chain": {"en": "Chain", "zh-CN": "链"},
    "switch_to": {"en": "中文", "zh-CN": "English"},
    "regulator_title": {"en": "Supervision overview", "zh-CN": "监管概览"},
    "regulator_intro": {
        "en": "Indicators of every charity, read from the ledger's indexes; each links to the "
        "charity's page and its transactions.",
        "zh-CN": "各慈善组织的指标，取自账本索引；点击可查看该组织页面及其交易。",
    },
    "parties": {"en": "Parties", "zh-CN": "参与方"},
    "role": {"en": "Role", "zh-CN": "角色"},
    "role_charity": {"en": "Charity", "zh-CN": "慈善组织"},
    "role_platform": {"en": "Platform", "zh-CN": "募捐平台"},
    "role_regulator": {"en": "Regulator", "zh-CN": "监管机构"},
    "latest_audit": {"en": "Latest audit", "zh-CN": "最近审计"},
    "evidence_title": {
        "en": "Validator misbehaviour on the ledger",
        "zh-CN": "账本记录的验证节点违规",
    },
    "validator": {"en": "Validator", "zh-CN": "验证节点"},
    "kind": {"en": "Kind", "zh-CN": "类型"},
    "round": {"en": "Round", "zh-CN": "轮次"},
    "signals_title": {"en": "Risk signals", "zh-CN": "风险信号"},
    "signals_banner": {
        "en": "Computed by node {node} at height {height} from its own copy of the chain. "
        "Verify independently with `almoner supervise`.",
        "zh-CN": "由节点 {node} 在高度 {height} 根据其自身保存的账本计算。"
        "请使用 `almoner supervise` 独立核查。",
    },
    "signals_behind": {
        "en": "Analysis in progress: the chain's head is at height {head}; reload for more.",
        "zh-CN": "正在分析：账本最新高度为 {head}，请稍后刷新。",
    },
    "signals_error": {"en": "Analysis stopped: {error}", "zh-CN": "分析已停止：{error}"},
    "signals_intro": {
        "en": "Findings of the supervision rules (default thresholds, docs/supervision.md) "
        "and anomaly scores per charity and period, with the features that drive them.",
        "zh-CN": "监管规则的发现（默认阈值，见 docs/supervision.md），以及各慈善组织分期的"
        "异常评分及其主要驱动指标。",
    },
    "all_rules": {"en": "All rules", "zh-CN": "全部规则"},
    "filter": {"en": "Filter", "zh-CN": "筛选"},
    "rule": {"en": "Rule", "zh-CN": "规则"},
    "severity": {"en": "Severity", "zh-CN": "严重程度"},
    "severity_info": {"en": "Info", "zh-CN": "提示"},
    "severity_warning": {"en": "Warning", "zh-CN": "警告"},
    "severity_high": {"en": "High", "zh-CN": "严重"},
    "party": {"en": "Party", "zh-CN": "相关方"},
    "explanation": {"en": "Explanation", "zh-CN": "说明"},
    "scores_title": {"en": "Anomaly scores", "zh-CN": "异常评分"},
    "score": {"en": "Score", "zh-CN": "评分"},
    "drivers": {"en": "Driven by", "zh-CN": "主要驱动指标"},
    "rule_unconfirmed_donation": {"en": "Unconfirmed donation", "zh-CN": "捐赠未确认"},
    "rule_spent_before_confirmation": {
        "en": "Spent before confirmation",
        "zh-CN": "确认前即支出",
    },
    "rule_idle_restricted_funds": {"en": "Idle restricted funds", "zh-CN": "限定资金闲置"},
    "rule_overhead_above_limit": {"en": "Overhead above limit", "zh-CN": "管理费用超限"},
    "rule_disbursement_without_evidence": {
        "en": "Disbursement without evidence",
        "zh-CN": "支出无凭证",
    },
    "rule_circular_flow": {"en": "Circular flow", "zh-CN": "资金回流"},
    "rule_quick_refund": {"en": "Quick refund", "zh-CN": "快速退款"},
    "rule_donation_splitting": {"en": "Donation splitting", "zh-CN": "拆分捐赠"},
    "rule_payee_concentration": {"en": "Payee concentration", "zh-CN": "收款方集中"},
    "rule_audit_opinion": {"en": "Audit opinion or suspension", "zh-CN": "审计意见或暂停资格"},
    "feature_overhead_ratio": {"en": "overhead ratio", "zh-CN": "管理费用占比"},
    "feature_payee_concentration": {"en": "payee concentration", "zh-CN": "收款方集中度"},
    "feature_confirmation_delay": {"en": "confirmation delay (days)", "zh-CN": "确认延迟（天）"},
    "feature_refund_rate": {"en": "refund rate", "zh-CN": "退款率"},
    "feature_idle_share": {"en": "idle share", "zh-CN": "闲置资金占比"},
    "feature_spending_velocity": {"en": "spending velocity", "zh-CN": "支出速度"},
    "unsupported": {
        "en": "This browser cannot check Ed25519 signatures.",
        "zh-CN": "此浏览器无法验证 Ed25519 签名。",
    },
}


def babel_locale(lang: str) -> Locale:
    return Locale.parse(lang.replace("-", "_"))


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for choice in (query, cookie):
        if choice in LANGS:
            assert choice is not None
            return choice
    for tag in _accepted(accept_language or ""):
        try:
            locale = Locale.parse(tag.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language == "zh":
            return "zh-CN"
        if locale.language == "en":
            return "en"
    return DEFAULT_LANG


def _accepted(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most preferred first."""
    weighted = []
    for position, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


class Translator:
    """What a template needs for one language: messages, money, dates, percentages."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.locale = babel_locale(lang)
        self.other = "en" if lang == "zh-CN" else "zh-CN"

    def __call__(self, key: str, **values: object) -> str:
        text = MESSAGES[key][self.lang]
        return text.format(**values) if values else text

    def money(self, amount: int, currency: str) -> str:
        digits = get_currency_precision(currency)
        value = Decimal(amount).scaleb(-digits)
        return format_currency(value, currency, locale=self.locale)

    def when(self, time_ms: int | None) -> str:
        if time_ms is None:
            return "—"
        moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
        return format_datetime(moment, "medium", tzinfo=UTC, locale=self.locale) + " UTC"

    def percent(self, ratio: float | None) -> str:
        return "—" if ratio is None else format_percent(ratio, "#,##0.0%", locale=self.locale)
