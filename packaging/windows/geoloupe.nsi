; The Windows installer of geoloupe: a per-user install (no administrator rights) into
; %LOCALAPPDATA%\Programs\geoloupe, a Start-menu shortcut, an entry in "Apps & features" (Add/Remove
; Programs) and "Open with" entries for the photo formats geoloupe reads. The uninstaller removes
; all of them again. The user's own data stays: models and the library in
; %APPDATA%\geoloupe\geoloupe\data, caches in %LOCALAPPDATA%\geoloupe\geoloupe\cache, window
; settings in %APPDATA%\org.geoloupe.geoloupe.
;
; Built with NSIS 3 (Debian: `apt-get install nsis`) by `scripts/windows.sh installer`, which
; passes the version, the staged (stripped) geoloupe.exe and the output file:
;   makensis -DVERSION=0.1.0 -DSTAGE=<folder with geoloupe.exe> -DOUTFILE=<setup.exe> \
;     packaging/windows/geoloupe.nsi
; Silent install and uninstall: `geoloupe-0.1.0-setup.exe /S`, `uninstall.exe /S`.
;
; Why not cargo-packager's NSIS target: on Linux it downloads NSIS plugin DLLs from GitHub
; releases, and its template builds a 32-bit installer (needs 32-bit Wine to test). This script
; needs only the plugins that come with NSIS itself and builds a 64-bit installer.

Unicode true
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel user
ManifestDPIAware true

!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef STAGE
  !error "pass -DSTAGE=<folder holding geoloupe.exe>"
!endif
!ifndef OUTFILE
  !define OUTFILE "geoloupe-${VERSION}-setup.exe"
!endif

!define APP "geoloupe"
!define PUBLISHER "The geoloupe developers"
!define URL "https://github.com/geoloupe/geoloupe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP}"
; The one ProgID every photo extension points at through OpenWithProgids.
!define PROGID "geoloupe.Photo"

Name "${APP}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP}"
Icon "icons\geoloupe.ico"
UninstallIcon "icons\geoloupe.ico"
BrandingText "${APP} ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

; "Open with geoloupe" for one extension (the user's default program for it is left alone).
!macro OpenWith EXT
  WriteRegStr HKCU "Software\Classes\${EXT}\OpenWithProgids" "${PROGID}" ""
  WriteRegStr HKCU "Software\Classes\Applications\geoloupe.exe\SupportedTypes" "${EXT}" ""
!macroend

; Undoes OpenWith, and removes the extension's keys only when nothing else is left in them.
!macro RemoveOpenWith EXT
  DeleteRegValue HKCU "Software\Classes\${EXT}\OpenWithProgids" "${PROGID}"
  DeleteRegKey /ifempty HKCU "Software\Classes\${EXT}\OpenWithProgids"
  DeleteRegKey /ifempty HKCU "Software\Classes\${EXT}"
!macroend

; The photo extensions geoloupe reads (library::scan's list).
!macro ForEachPhotoExtension MACRO
  !insertmacro ${MACRO} ".jpg"
  !insertmacro ${MACRO} ".jpeg"
  !insertmacro ${MACRO} ".jpe"
  !insertmacro ${MACRO} ".jfif"
  !insertmacro ${MACRO} ".png"
  !insertmacro ${MACRO} ".webp"
  !insertmacro ${MACRO} ".tif"
  !insertmacro ${MACRO} ".tiff"
  !insertmacro ${MACRO} ".gif"
  !insertmacro ${MACRO} ".bmp"
  !insertmacro ${MACRO} ".heic"
  !insertmacro ${MACRO} ".heif"
  !insertmacro ${MACRO} ".hif"
  !insertmacro ${MACRO} ".avif"
!macroend

Section "geoloupe"
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  File "${STAGE}\geoloupe.exe"
  File "icons\geoloupe.ico"
  File "assets\BASEMAP_LICENSE.md"
  File "assets\PLACES_LICENSE.md"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortcut "$SMPROGRAMS\${APP}.lnk" "$INSTDIR\geoloupe.exe" "" "$INSTDIR\geoloupe.ico" 0

  ; Apps & features.
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "URLInfoAbout" "${URL}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\geoloupe.ico"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  SectionGetSize 0 $0
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" $0

  ; The ProgID: what "Open with > geoloupe" runs, and its icon.
  WriteRegStr HKCU "Software\Classes\${PROGID}" "" "Photo (geoloupe)"
  WriteRegStr HKCU "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\geoloupe.exe,0"
  WriteRegStr HKCU "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\geoloupe.exe" "%1"'
  ; The application's own entry, so "Open with" lists it by name.
  WriteRegStr HKCU "Software\Classes\Applications\geoloupe.exe" "FriendlyAppName" "${APP}"
  WriteRegStr HKCU "Software\Classes\Applications\geoloupe.exe\shell\open\command" "" '"$INSTDIR\geoloupe.exe" "%1"'
  !insertmacro ForEachPhotoExtension OpenWith

  ; SHCNE_ASSOCCHANGED: Explorer rereads the associations.
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$INSTDIR\geoloupe.exe"
  Delete "$INSTDIR\geoloupe.ico"
  Delete "$INSTDIR\BASEMAP_LICENSE.md"
  Delete "$INSTDIR\PLACES_LICENSE.md"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${APP}.lnk"

  !insertmacro ForEachPhotoExtension RemoveOpenWith
  DeleteRegKey HKCU "Software\Classes\${PROGID}"
  DeleteRegKey HKCU "Software\Classes\Applications\geoloupe.exe"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"

  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd
