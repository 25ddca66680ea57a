from __future__ import annotations

from typing import Literal

from litestar import Controller, Response, get
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, Role
from distnet.kit.http import roles
from distnet.network.errors import DistributorNotFound
from distnet.personal_data import service
from distnet.personal_data.schemas import PersonalDataExport
from distnet.settings import Settings


class PersonalDataController(Controller):
    path = "/api/v1/me"
    tags = ["personal data"]

    @get(
        "/export",
        opt=roles(Role.distributor, raises=[DistributorNotFound], files=["application/zip"]),
        summary="My data: everything held about me (PIPL access)",
    )
    async def export(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        format: Literal["json", "zip"] = "json",
    ) -> Response[PersonalDataExport]:
        doc = await service.export(
            session, settings=settings, principal=principal, distributor_id=principal.distributor_id or 0
        )
        stamp = doc.exported_at.strftime("%Y%m%dT%H%M%SZ")
        name = f"distnet-{doc.profile.code}-{stamp}"
        if format == "zip":
            return Response(
                service.to_zip(doc),  # type: ignore[arg-type]
                media_type="application/zip",
                headers={
                    "Content-Disposition": f'attachment; filename="{name}.zip"',
                    "Cache-Control": "no-store",
                },
            )
        return Response(
            doc,
            headers={
                "Content-Disposition": f'attachment; filename="{name}.json"',
                "Cache-Control": "no-store",
            },
        )
