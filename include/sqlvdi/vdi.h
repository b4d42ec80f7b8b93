/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Source compatibility with SQL Server on Linux's VDI client SDK.
 *
 * A backup client written for that SDK's vdi.h builds against libvdi by
 * pointing its include path here and linking -lvdi instead of -lsqlvdi:
 * the classes ClientVirtualDeviceSet and ClientVirtualDevice have the SDK's
 * methods and signatures, the structs and constants are the SDK's.  The
 * classes are thin inline wrappers over libvdi's C API.
 */
#ifndef LIBVDI_SQLVDI_VDI_H
#define LIBVDI_SQLVDI_VDI_H

#include <stdint.h>
#include <time.h>

#include "../libvdi.h"

#ifdef __cplusplus

class ClientVirtualDeviceSet;

class ClientVirtualDevice {
public:
	ClientVirtualDevice() : m_dev(0) {}
	~ClientVirtualDevice() {}

	/* Next command, waiting timeOut ms (negative: forever, 0: poll). */
	int GetCommand(time_t timeOut, VDC_Command **ppCmd)
	{
		return vdi_client_get_command(m_dev, (int64_t)timeOut, ppCmd);
	}

	int CompleteCommand(VDC_Command *pCmd, int completionCode,
			    unsigned long bytesTransferred, int64_t position)
	{
		return vdi_client_complete_command(m_dev, pCmd,
						   (uint32_t)completionCode,
						   (uint32_t)bytesTransferred,
						   position);
	}

private:
	friend class ClientVirtualDeviceSet;
	vdi_client_device *m_dev;

	ClientVirtualDevice(const ClientVirtualDevice &);
	ClientVirtualDevice &operator=(const ClientVirtualDevice &);
};

class ClientVirtualDeviceSet {
public:
	ClientVirtualDeviceSet() : m_set(vdi_client_set_new()), m_ndevs(0) {}
	~ClientVirtualDeviceSet()
	{
		ForgetDevices();
		vdi_client_set_free(m_set);
	}

	int Create(char *name, VDConfig *cfg)
	{
		if (!m_set)
			return VD_E_MEMORY;
		return vdi_client_create(m_set, name, cfg);
	}

	int GetConfiguration(time_t timeout, VDConfig *cfg)
	{
		if (!m_set)
			return VD_E_MEMORY;
		return vdi_client_get_configuration(m_set, (int64_t)timeout,
						    cfg);
	}

	int OpenDevice(char *name, ClientVirtualDevice **ppVirtualDevice)
	{
		ClientVirtualDevice *dev;
		int ret;

		if (!ppVirtualDevice)
			return VD_E_INVALID;
		*ppVirtualDevice = 0;
		if (!m_set)
			return VD_E_MEMORY;
		if (m_ndevs == LIBVDI_MAX_DEVICES)
			return VD_E_OPEN;
		dev = new ClientVirtualDevice();
		ret = vdi_client_open_device(m_set, name, &dev->m_dev);
		if (ret != NOERROR) {
			delete dev;
			return ret;
		}
		m_devs[m_ndevs++] = dev;
		*ppVirtualDevice = dev;
		return NOERROR;
	}

	/* Device objects are invalid afterwards, as in the SDK. */
	int Close()
	{
		int ret;

		if (!m_set)
			return VD_E_PROTOCOL;
		ret = vdi_client_close(m_set);
		ForgetDevices();
		return ret;
	}

	int SignalAbort()
	{
		if (!m_set)
			return VD_E_PROTOCOL;
		return vdi_client_signal_abort(m_set);
	}

	int OpenInSecondary(char *setName)
	{
		if (!m_set)
			return VD_E_MEMORY;
		return vdi_client_open_in_secondary(m_set, setName);
	}

	int GetBufferHandle(uint8_t *pBuffer, unsigned int *pBufferHandle)
	{
		if (!m_set)
			return VD_E_PROTOCOL;
		return vdi_client_get_buffer_handle(m_set, pBuffer,
						    pBufferHandle);
	}

	int MapBufferHandle(int dwBuffer, uint8_t **ppBuffer)
	{
		if (!m_set)
			return VD_E_PROTOCOL;
		if (dwBuffer < 0)
			return VD_E_INVALID;
		return vdi_client_map_buffer_handle(m_set,
						    (unsigned int)dwBuffer,
						    ppBuffer);
	}

	/*
	 * Public but undocumented in the SDK.  libvdi tracks each device's
	 * normal end itself (GetCommand returning VD_E_CLOSE), so there is
	 * nothing to register: kept for source compatibility.
	 */
	void RegisterDeviceClosed() {}

private:
	vdi_client_set *m_set;
	unsigned int m_ndevs;
	ClientVirtualDevice *m_devs[LIBVDI_MAX_DEVICES];

	void ForgetDevices()
	{
		while (m_ndevs)
			delete m_devs[--m_ndevs];
	}

	ClientVirtualDeviceSet(const ClientVirtualDeviceSet &);
	ClientVirtualDeviceSet &operator=(const ClientVirtualDeviceSet &);
};

#endif /* __cplusplus */

#endif /* LIBVDI_SQLVDI_VDI_H */
