"""The API's error messages in Simplified Chinese for clients that ask (``Accept-Language:
zh-CN``). The message gets a Chinese sentence chosen by the error's code (or its type), and
keeps the English detail after it: limits, counts and names stay exact. Codes, types and
params are never translated (clients branch on them)."""

from __future__ import annotations

import copy

from smartoken.errors import GatewayError
from smartoken.i18n.locales import negotiate

ZH_BY_CODE = {
    "invalid_request": "请求无效",
    "invalid_value": "参数取值无效",
    "invalid_type": "参数类型错误",
    "missing_required_parameter": "缺少必填参数",
    "unknown_parameter": "未知参数",
    "context_length_exceeded": "超出模型的上下文长度",
    "invalid_api_key": "API 密钥无效",
    "key_revoked": "API 密钥已被吊销",
    "key_expired": "API 密钥已过期",
    "insufficient_balance": "钱包余额不足",
    "model_not_allowed": "此密钥无权使用该模型",
    "model_not_found": "模型不存在",
    "not_found": "路径不存在",
    "already_exists": "已存在",
    "request_too_large": "请求体过大",
    "request_headers_too_large": "请求头过大",
    "budget_exceeded": "已超出密钥预算",
    "rate_limit_exceeded": "请求过于频繁，已被限流",
    "too_many_auth_failures": "认证失败次数过多，请稍后再试",
    "upstream_failed": "所有上游路由均失败",
    "budget_store_unavailable": "预算存储暂时不可用",
    "budget_store_busy": "预算存储繁忙",
    "database_unavailable": "数据库暂时不可用，请稍后重试",
    "admin_required": "需要管理员权限",
    "admin_only": "仅限管理员",
    "restricted_key": "受限密钥无法执行此操作",
    "file_not_found": "文件不存在",
    "file_too_large": "文件过大",
    "empty_file": "文件为空",
    "unsupported_file": "不支持的文件格式",
    "corrupt_file": "文件已损坏",
    "file_has_no_text": "文件中没有可提取的文本",
    "storage_quota_exceeded": "存储配额已用完",
    "file_count_limit_exceeded": "文件数量超出上限",
    "invalid_amount": "金额无效",
    "account_not_found": "账户不存在",
    "key_not_found": "密钥不存在",
    "provider_not_found": "供应商不存在",
    "internal_error": "内部错误",
}
ZH_BY_TYPE = {
    "invalid_request_error": "请求无效",
    "authentication_error": "认证失败",
    "permission_error": "权限不足",
    "insufficient_quota": "额度不足",
    "rate_limit_error": "请求过于频繁",
    "upstream_error": "上游服务出错",
    "server_error": "服务器错误",
}


def summary(code: str | None, type_: str | None = None) -> str:
    """The Chinese sentence for an error's code (or its type)."""
    return ZH_BY_CODE.get(code or "") or ZH_BY_TYPE.get(type_ or "") or "请求失败"


def localize(err: GatewayError, accept_language: str | None,
             chosen: str | None = None) -> GatewayError:
    """``err`` itself for English clients; a translated copy for Chinese ones. ``chosen``: the
    language a console user picked (its cookie), which wins over the browser's header."""
    if negotiate(accept_language, chosen) != "zh_CN":
        return err
    zh = summary(err.code, err.type)
    out = copy.copy(err)
    out.message = f"{zh}：{err.message}"
    return out
